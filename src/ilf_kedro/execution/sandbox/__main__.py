"""Entry point of the sandbox server: ``python -I -S <this file> JOBFILE``.

Loaded as a plain script (``-I`` adds no directory to ``sys.path``), it loads this
package under the name ``ilf_sandbox`` from its own directory, so that the server imports
nothing but the standard library and these modules (never ``ilf_kedro``, whose
``__init__`` imports pandas), then runs :func:`.server.main`.
"""

import importlib.util
import os
import sys

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "ilf_sandbox", os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules["ilf_sandbox"] = package
    spec.loader.exec_module(package)
    from ilf_sandbox.server import main

    sys.exit(main(sys.argv))
