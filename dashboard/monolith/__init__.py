"""Monolith: run the old way (a fresh process that imports TensorFlow and loads the model) on an image, and record it.

    ids.py         the feature's component ids
    layout.py      the "Compare with the monolith" card and the result panel drawn into it
    callbacks.py   the background callback behind the button
    controller.py  what it does (and what ``python -m dashboard monolith`` does), as plain functions
    runner.py      runs ``python -m model_backend.monolith IMAGE --json`` as a subprocess and reads its JSON
    queue.py       the cross-process cap on monolith runs (flock'd slot files) and its waiting line
    command.py     ``python -m dashboard monolith IMAGE``: one run from the command line, recorded in the history
"""
