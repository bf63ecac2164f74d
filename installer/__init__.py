"""The Fixative installer: puts the engine and the GIMP/Krita plug-ins in place for one user.

Run it as ``python installer/install.py`` (standard library only, Python 3.8+) or as
``fixative install-plugins``. One module per concern:

- ``cli``: the command line (flags, ``run``, ``main``);
- ``actions``: what install and uninstall do, step by step;
- ``editors``: which GIMP/Krita user folders exist (the per-OS rules themselves are in
  ``engine/fixative/locations.py``, shared with the plug-in client and the engine);
- ``plugin_files``: the plug-in files from the checkout, per editor, and the Krita zip;
- ``engine_env``: the engine's Python (its own venv or the current one), pip and models;
- ``manifest``: every file written with its sha256, for idempotence, backups and uninstall;
- ``kritarc``: the one-key edit of Krita's settings file;
- ``report``: what is printed.
"""
