"""The enforcer: one agent per host that admits or refuses container starts.

- `agent`: registers with the console, heartbeats, keeps the policy bundle cached on disk, decides.
- `spool`: the on-disk event spool, uploaded in batches with idempotency keys.
- `server`: the unix-socket decision server that the OCI hook asks.
- `hook`: the OCI runtime hook program in Python (kept tiny: it starts on every container start);
  `hook.c` is the same program compiled, the default.
- `hookbuild`: builds the compiled hook (`hook.c`) and chooses the hook command.
- `monitor`, `fanotify`: the runtime monitor (exec control inside containers).
- `netwatch`: a container's listeners and outbound connections from its /proc/PID/net.
- `podman`: reads podman's container metadata (the image name a container was started with).
- `oci`: turns what the hook sends (state, config.json, metadata) into a `ContainerRequest`.
- `admission`: the Kubernetes validating admission webhook (AdmissionReview v1 over TLS).
- `state`: the enforcer's state directory and its atomic writes.

Nothing is imported here, so that `python -m tidegate.enforcer.hook` imports only the hook.
"""
