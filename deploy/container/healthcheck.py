"""The image's HEALTHCHECK: GET /v2/health/ready on the port the server was started with.

The port comes from the server's own command line (--rest_port, as the reference server's
`docker run` line passes it), else OVTEXT_REST_PORT or PORT, else 8000. Exit 0 when ready.
"""

import os
import sys
import urllib.request


def rest_port() -> str:
    try:
        with open("/proc/1/cmdline", "rb") as cmdline:
            arguments = cmdline.read().decode(errors="replace").split("\0")
    except OSError:
        arguments = []
    for index, argument in enumerate(arguments):
        if argument == "--rest_port" and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith("--rest_port="):
            return argument.split("=", 1)[1]
    return os.environ.get("OVTEXT_REST_PORT") or os.environ.get("PORT") or "8000"


try:
    with urllib.request.urlopen(f"http://127.0.0.1:{rest_port()}/v2/health/ready", timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:
    print(f"not ready: {error}", file=sys.stderr)
    sys.exit(1)
