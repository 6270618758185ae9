"""The same trainer on a cluster (chapter 7): TF_CONFIG and the strategy it calls for,
evaluation beside training, local clusters in a private network, and Vertex AI jobs.

    tf_config    what TF_CONFIG says (2017's Cloud ML Engine or Vertex AI), in TF's terms
    strategy     the tf.distribute strategy a TF_CONFIG calls for
    evaluation   evaluation on the chief (parameter servers) and the sidecar evaluator
    tiers        Cloud ML Engine's scale tiers as task counts (a Layout)
    namespace    a loopback-only network namespace, as root or as an ordinary user
    cluster      a local cluster: the trainer once per task (`census cluster`)
    vertex_env   what Vertex AI tells a replica: CLUSTER_SPEC, AIP_* directories, trial id
    vertex       the same job as a Vertex AI CustomJob (YAML, gcloud, the SDK)
"""
