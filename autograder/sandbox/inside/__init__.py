"""The only code bound into the sandbox (``runner.BOUND_FILES``): it runs next to student code.

``harness.py`` runs there as a script, with this folder as its import path, so it imports its
two neighbours (``syscall_policy``, ``fingerprint``) by bare name, and nothing else of this
package: no reference solution and no hidden test logic is visible inside. The trusted side may
import ``fingerprint`` from here, to recompute what the sandbox reports. This file is not bound.
"""
