"""Online prediction (chapter 9): `census serve`, a model server that speaks TensorFlow
Serving's REST API and a Vertex AI endpoint's predict format, its client, and Vertex AI.

    protocol   requests and replies: TF Serving's REST API, Vertex AI's; the errors
    versions   the exports a server watches, loads, warms up and serves
    batching   the model called off the event loop, several requests per call
    app        the Starlette app: routes, errors as JSON, bodies read to the end
    process    a server in a thread or a child process, started and stopped
    cli        `census serve`
    client     `census predict --url`: one request, and a short load run (httpx)
    vertex     the same exports on a Vertex AI endpoint (Model.upload, deploy, predict)
"""
