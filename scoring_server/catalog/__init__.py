"""The models a server serves, each worker's copy of them, and how they change while serving.

- ``loading``: load a model by URI (a directory or a ``models:/`` reference) with its identity,
  under the server's loading policy (formats, skops trust).
- ``roots``: which URIs the admin API may add (``models:/``, or directories inside
  ``allowed_model_roots``).
- ``slot``: the one model of a single-model server, swapped atomically.
- ``sources``: where a many-model server's names come from (models file, model root, registry,
  admin changes shared by the workers).
- ``cache``: the models a worker has loaded, least recently used unloaded first.
- ``catalog``: names to scorers for a many-model server, on top of the two above.
- ``follower``: one thread per worker that polls moving registry references (stage, alias,
  latest) for both kinds of server, and installs the version they move to.
"""
