"""The benchmark: how close the served model gets to its in-process limit, in one run on one machine.

    python -m tools.bench [--model NAME] [--weights random] [--quick] [--out DIR | --update-results] ...
    ./run.sh bench [same flags]

A developer tool, outside the served packages (nothing in model_backend/ or
dashboard/ imports it). In order, so that no measurement runs beside another
TensorFlow runtime: the in-process limit (in a child process), the monolith,
the service under load, the dashboard's HTTP API, memory, and 1 vs 2 workers
behind the broker; then the targets (ratios from this same run), printed and
written with the tables and a figure.

One module per job:

* :mod:`~tools.bench.plan`: what to measure and how much (levels, counts, photos, output folders);
* :mod:`~tools.bench.processes`: the child processes and their ready lines (on :mod:`tools.processes`);
* :mod:`~tools.bench.load`: the load generator and its summaries;
* :mod:`~tools.bench.meter`: how loud the machine was (others' CPU), memory;
* :mod:`~tools.bench.limit` and :mod:`~tools.bench.sections`: the measurements;
* :mod:`~tools.bench.stats`, :mod:`~tools.bench.targets`, :mod:`~tools.bench.report`: the maths, the verdicts, the tables;
* :mod:`~tools.bench.figures`: the figure, drawn with Plotly;
* :mod:`~tools.bench.run`: the command line and the whole run.

Needs scikit-image (the photo) and kaleido (the PNG), from the test extra:
``pip install -e '.[test]'`` (``./run.sh bench`` has it).
"""
