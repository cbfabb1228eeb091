"""Jupyter server settings for grading in formgrader (README, "Grading"), read when the server is
started from the course root as ``JUPYTER_CONFIG_PATH="$PWD" .venv/bin/jupyter lab``."""

c = get_config()  # noqa: F821  (Jupyter injects get_config)

# Every page the server sends, formgrader's included, may load and send nothing outside this
# server: an answer that got past the sanitiser (nbgrader_config.py's c.HTMLExporter.filters)
# could not reach another site, and formgrader's MathJax, which nbgrader's template asks a CDN
# for, is not needed (the math is typeset when the page is rendered). Formgrader's own pages
# are built on inline scripts and onclick handlers, so inline script cannot be forbidden here:
# the sanitiser is what keeps student content from being script.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
c.ServerApp.tornado_settings = {"headers": {"Content-Security-Policy": CSP}}

# Kernels opened in this server listen on Unix sockets in the runtime folder (mode 0700), not on
# loopback ports that every account of the machine can reach (students' servers: provision.py).
c.ServerKernelManager.transport = "ipc"
