"""The shared kernel: the contracts and the service edge every service builds on.

Every name two services share lives here, in one module per contract; so does the edge of a service:
its settings (`kernel.settings`), its logging set-up (`kernel.logs`) and its systemd notifier
(`kernel.notify`). The kernel imports nothing from the services.
"""
