"""The course in an LMS: LTI 1.3 launch into the hub, the roster from it, the scores back.

An LMS (Canvas, Moodle, any LTI 1.3 platform) links to this hub as an external tool. Three parts,
each usable without the others:

* ``launch.py``: the hub's authenticator (``jupyterhub-ltiauthenticator``'s, with this course's
  identity rule, role check and replay refusal on top) and the tool's public key set;
* ``roster_sync.py``: ``python -m course_hub.lti roster``, the LMS's students into nbgrader's
  gradebook through Names and Role Provisioning;
* ``passback.py``: ``python -m course_hub.lti passback``, each student's total into the LMS's
  gradebook through Assignment and Grade Services: the totals of ``canvas.csv``, computed by
  the same code (``autograder.outputs.exports.collect``).

What they share: ``registration.py`` (the platform's registration, one JSON file),
``identity.py`` (LMS user -> nbgrader id and LMS role -> course role; pure), ``keys.py`` (the
tool's signing keys and their rotation) and ``services.py`` (the platform's REST services,
whose replies are read as untrusted). Imports point one way, no cycles: ``identity`` and
``keys`` import nothing of this package, ``registration`` only ``identity``'s rule names,
``services`` ``keys`` and ``registration``; the three parts above sit on those. ``launch`` runs
in the hub and never imports ``autograder``; only ``passback`` does, for the totals.
"""
