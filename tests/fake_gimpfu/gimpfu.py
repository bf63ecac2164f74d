"""Stand-in for GIMP 2.10's gimpfu: register(), main(), the PF_* constants, pdb and gimp.

Behaves like the real module where plug-ins can tell: the same register() signature and checks
(allowed characters, 4-element parameter tuples, python-fu- prefix, menu= or a menu path in the
label), the run-mode argument added in front, non-interactive calls passing the arguments
straight through, and interactive runs calling on_run, using the last (or default) values and
showing a traceback dialog (recorded in ``fake_traceback_dialogs``) when the function raises.
"""

from __future__ import absolute_import, division, print_function

import string as _string
import traceback as _traceback

import gimp
import gimpcolor
from gimpenums import *  # noqa: F401,F403 - gimpfu re-exports every enum, as the real one does
from gimpenums import (PDB_COLOR, PDB_DISPLAY, PDB_DRAWABLE, PDB_FLOAT, PDB_IMAGE, PDB_INT8,
                       PDB_INT16, PDB_INT32, PDB_LAYER, PDB_CHANNEL, PDB_REGION, PDB_STRING,
                       PDB_VECTORS, PLUGIN, RUN_INTERACTIVE, RUN_NONINTERACTIVE,
                       RUN_WITH_LAST_VALS)

pdb = gimp.pdb


class error(RuntimeError):
    pass


class CancelError(RuntimeError):
    pass


PF_INT8, PF_INT16, PF_INT32 = PDB_INT8, PDB_INT16, PDB_INT32
PF_INT = PF_INT32
PF_FLOAT, PF_STRING = PDB_FLOAT, PDB_STRING
PF_VALUE = PF_STRING
PF_COLOR = PF_COLOUR = PDB_COLOR
PF_REGION, PF_DISPLAY, PF_IMAGE = PDB_REGION, PDB_DISPLAY, PDB_IMAGE
PF_LAYER, PF_CHANNEL, PF_DRAWABLE, PF_VECTORS = PDB_LAYER, PDB_CHANNEL, PDB_DRAWABLE, PDB_VECTORS
PF_TOGGLE = 1000
PF_BOOL = PF_TOGGLE
PF_SLIDER, PF_SPINNER = 1001, 1002
PF_ADJUSTMENT = PF_SPINNER
PF_FONT, PF_FILE, PF_BRUSH, PF_PATTERN, PF_GRADIENT = 1003, 1004, 1005, 1006, 1007
PF_RADIO, PF_TEXT, PF_PALETTE, PF_FILENAME, PF_DIRNAME, PF_OPTION = (1008, 1009, 1010, 1011,
                                                                      1012, 1013)

_PDB_TYPE = {PF_TOGGLE: PDB_INT32, PF_SLIDER: PDB_FLOAT, PF_SPINNER: PDB_INT32,
             PF_OPTION: PDB_INT32}
for _pf in (PF_FONT, PF_FILE, PF_BRUSH, PF_PATTERN, PF_GRADIENT, PF_RADIO, PF_TEXT, PF_PALETTE,
            PF_FILENAME, PF_DIRNAME):
    _PDB_TYPE[_pf] = PDB_STRING

try:
    _TEXT_TYPES = (str, unicode)  # noqa: F821 - Python 2.7
except NameError:
    _TEXT_TYPES = (str,)

# What each PF type accepts when a plug-in is called through the PDB.
_ACCEPTS = {PF_INT8: int, PF_INT16: int, PF_INT32: int, PF_FLOAT: (int, float),
            PF_STRING: _TEXT_TYPES, PF_COLOR: gimpcolor.RGB, PF_DISPLAY: gimp.Display,
            PF_IMAGE: gimp.Image, PF_LAYER: gimp.Layer, PF_CHANNEL: gimp.Channel,
            PF_DRAWABLE: gimp.Drawable, PF_VECTORS: gimp.Vectors, PF_TOGGLE: (bool, int),
            PF_SLIDER: (int, float), PF_SPINNER: int, PF_OPTION: int}

_registered_plugins_ = {}
_shelf = {}
fake_traceback_dialogs = []
fake_dialog_values = {}  # test hook: name -> value the artist "enters" in the interactive dialog


def _allowed(name):
    allowed = _string.ascii_letters + _string.digits + "_-"
    return all(ch in allowed for ch in name)


def register(proc_name, blurb, help, author, copyright, date, label, imagetypes, params, results,
             function, menu=None, domain=None, on_query=None, on_run=None):
    """Register a plug-in procedure, with the real gimpfu's sanity checks."""
    if not _allowed(proc_name):
        raise error("procedure name contains illegal characters")
    for entry in params:
        if len(entry) < 4:
            raise error("parameter definition must contain at least 4 elements (%s given: %s)"
                        % (len(entry), entry))
        if not isinstance(entry[0], int):
            raise error("parameter types must be integers")
        if not _allowed(entry[1]):
            raise error("parameter name contains illegal characters")
        if entry[0] == PF_OPTION and (len(entry) < 5 or not 0 <= entry[3] < len(entry[4])):
            raise error("PF_OPTION needs a list of options and a default index inside it")
    for entry in results:
        if len(entry) < 3 or not isinstance(entry[0], int) or not _allowed(entry[1]):
            raise error("bad result definition: %r" % (entry,))
    prefixes = ("python-", "python_", "extension-", "extension_", "plug-in-", "plug_in_",
                "file-", "file_")
    if not proc_name.startswith(prefixes):
        proc_name = "python-fu-" + proc_name
    params = list(params)
    if menu is None and label and "/" in label:
        fields = label.split("/")
        label = fields.pop()
        menu = "/".join(fields)
        if menu.startswith("<Image>"):
            params[0:0] = [(PDB_IMAGE, "image", "Input image", None),
                           (PDB_DRAWABLE, "drawable", "Input drawable", None)]
    _registered_plugins_[proc_name] = (blurb, help, author, copyright, date, label, imagetypes,
                                       PLUGIN, params, results, function, menu, domain,
                                       on_query, on_run)


def _query():
    for name, entry in _registered_plugins_.items():
        (blurb, help, author, copyright, date, label, imagetypes, plugin_type, params, results,
         _function, menu, domain, on_query, _on_run) = entry
        pdb_params = [(PDB_INT32, "run-mode", "The run mode")]
        pdb_params += [(_PDB_TYPE.get(p[0], p[0]), p[1], p[2].replace("_", "")) for p in params]
        pdb_results = [(_PDB_TYPE.get(r[0], r[0]), r[1], r[2]) for r in results]
        gimp.install_procedure(name, blurb, help, author, copyright, date, label, imagetypes,
                               plugin_type, pdb_params, pdb_results)
        if menu:
            gimp.menu_register(name, menu)
        if on_query:
            on_query()


def _check_call(proc_name, params, args):
    if len(args) != len(params):
        raise TypeError("%s takes %d arguments after run-mode, %d given"
                        % (proc_name, len(params), len(args)))
    for value, param in zip(args, params):
        accepted = _ACCEPTS.get(param[0])
        if accepted is not None and value is not None and not isinstance(value, accepted):
            raise TypeError("%s: wrong type %s for argument %r"
                            % (proc_name, type(value).__name__, param[1]))


def _run(proc_name, params):
    """What GIMP's call into the plug-in process does: dispatch by run mode."""
    (_blurb, _help, _author, _copyright, _date, _label, _types, _kind, script_params, _results,
     function, _menu, _domain, _on_query, on_run) = _registered_plugins_[proc_name]
    run_mode, args = params[0], tuple(params[1:])
    if run_mode == RUN_NONINTERACTIVE:
        _check_call(proc_name, script_params, args)
        result = function(*args)
        _shelf[proc_name] = list(args)
        return result
    # Interactive or last-values: the leading image/drawable come from GIMP, the rest from the
    # dialog (interactive) or the shelf.
    start = 0
    while (start < len(args) and start < len(script_params)
           and isinstance(args[start], _ACCEPTS.get(script_params[start][0], object))):
        start += 1
    values = list(_shelf.get(proc_name, [p[3] for p in script_params]))
    values[:start] = args[:start]
    if run_mode == RUN_WITH_LAST_VALS:
        result = function(*values)
    elif run_mode == RUN_INTERACTIVE:
        if on_run:
            on_run()
        for index, param in enumerate(script_params):
            if param[1] in fake_dialog_values:
                values[index] = fake_dialog_values[param[1]]
        _shelf[proc_name] = list(values)
        try:
            result = function(*values)
        except Exception:
            fake_traceback_dialogs.append(_traceback.format_exc())
            raise
    else:
        raise error("unknown run mode %r" % (run_mode,))
    gimp.displays_flush()
    return result


def main():
    """This should be called after registering the plug-in."""
    gimp.main(None, None, _query, _run)


def fail(msg):
    gimp.message(msg)
    raise error(msg)


def N_(message):
    return message
