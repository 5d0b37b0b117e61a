"""The shared kernel: every contract two services share, and the edge every service is built on.

The services (``reader``, ``uploader``, ``web``, ``analysis``, ``simulator``) depend on this package and never
on each other. It owns the data directory's layout (``layout``), the batch file format (``batch``), atomic
file commits (``atomic``), the session manifest (``manifest``), the health documents the services publish
(``status``), the live-stream protocol (``frames``), the session's event markers (``markers``), the uploaded object format with its manifest
(``objects``), the uploader's local state files (``upload_state``) and the one S3 client factory (``s3``).
No module outside it names a file, an object key, a manifest or status field, or a time format of a contract.
It also holds the edge of a service: its settings (``settings``), its logging set-up (``logs``) and its
systemd notifier (``notify``). The kernel imports nothing from the services.
"""
