"""A pytest plugin for nbval runs (`python -m pytest -p tests.nbval_ipc --nbval-lax …` from the
repository): nbval's kernels are started like every notebook the course runs in batch
(census.course.runner.kernel_manager_class): over Unix sockets, not TCP ports on localhost."""


def pytest_configure(config):
    """Give nbval the course's kernel manager (nbval has no option for it: it calls
    jupyter_client's KernelManager by the name it imported)."""
    import nbval.kernel

    from census.course import runner
    nbval.kernel.KernelManager = runner.kernel_manager_class(sync=True)
