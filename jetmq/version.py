"""jetmq's version, in a module of its own so that any layer may import it."""
__version__ = "0.1.0"

import sys as _sys

#: The Python a process runs: members must run the master's (pickled code does not cross versions).
PYTHON_VERSION = f"{_sys.version_info.major}.{_sys.version_info.minor}"
