"""Cloud Storage paths for the batch job (chapter 10) and for `census serve`'s model (chapter
9): reading, listing and writing whole objects, and copying a folder down, with
google-cloud-storage.

Why not TensorFlow's own `gs://` file system: it speaks to `https://www.googleapis.com`
only (no emulator setting), so nothing written with it could be tested here, while
google-cloud-storage honours `STORAGE_EMULATOR_HOST` (the tests run fake-gcs-server). Its
`Client()` takes the credentials of `gcloud auth application-default login` (or Colab's
`google.colab.auth.authenticate_user()`); with the emulator set, anonymous ones.

An object appears whole when its upload ends: writing one is "renamed into place".
"""


def is_gcs(path):
    """Whether `path` (a str or os.PathLike) is a gs:// URI."""
    return str(path).startswith("gs://")


def split(uri):
    """gs://BUCKET/NAME → (BUCKET, NAME); ValueError for a URI with no bucket."""
    bucket, _, name = str(uri).removeprefix("gs://").partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket (gs://BUCKET/…)")
    return bucket, name


def join(folder, name):
    """A path or gs:// URI inside `folder`."""
    import os
    return f"{str(folder).rstrip('/')}/{name}" if is_gcs(folder) else os.path.join(folder, name)


def _bucket(name):
    from google.cloud import storage
    return storage.Client().bucket(name)


def exists(uri):
    """Whether the object `uri` exists."""
    bucket, name = split(uri)
    return _bucket(bucket).blob(name).exists()


def names(folder):
    """The names (relative to `folder`, str) of the objects under the gs:// `folder`, sorted."""
    bucket, prefix = split(folder)
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    return sorted(b.name[len(prefix):] for b in _bucket(bucket).list_blobs(prefix=prefix))


def download(uri, path):
    """Copy the object `uri` into the local file `path` (streamed: flat memory)."""
    bucket, name = split(uri)
    _bucket(bucket).blob(name).download_to_filename(str(path))


def download_folder(folder, dest):
    """Copy every object under the gs:// `folder` into the local folder `dest`, keeping the
    names below it (gs://B/m/1/saved_model.pb → dest/1/saved_model.pb); returns the number of
    files. Raises FileNotFoundError for a bucket that does not exist or a folder holding no
    objects; google.api_core's errors (e.g. Forbidden) and google.auth's pass on."""
    from pathlib import Path

    from google.api_core import exceptions
    bucket_name, prefix = split(folder)
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    bucket = _bucket(bucket_name)
    try:
        blobs = list(bucket.list_blobs(prefix=prefix))
    except exceptions.NotFound:
        raise FileNotFoundError(f"no bucket gs://{bucket_name} (for {folder})") from None
    dest = Path(dest).resolve()
    count = 0
    for blob in blobs:
        target = (dest / blob.name[len(prefix):]).resolve()
        if blob.name.endswith("/") or dest not in target.parents:
            continue  # a console's "folder" placeholder, or a name that climbs out ("..")
        target.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(target))
        count += 1
    if not count:
        raise FileNotFoundError(f"no objects under {folder}")
    return count


def upload(path, uri):
    """Copy the local file `path` to the object `uri` (which appears once complete)."""
    bucket, name = split(uri)
    _bucket(bucket).blob(name).upload_from_filename(str(path))


def read_lines(uri):
    """The lines of the object `uri` (str, line ends kept), streamed."""
    bucket, name = split(uri)
    with _bucket(bucket).blob(name).open("r", encoding="utf-8") as text:
        yield from text
