"""The benchmark: how close the served model gets to its in-process limit, in one run on one machine.

    python -m tools.bench [--model NAME] [--weights random] [--quick] [--out DIR | --update-results] ...
    ./run.sh bench [same flags]

A developer tool, outside the served packages (nothing in model_backend/ or
dashboard/ imports it). It measures the targets of issue 9 ("What it must
reach"), each a figure of this one run, printed as PASS / MISS (SKIP with the
reason where a section could not run) in the console, the ``.md`` and the
``.json``. In order, so that no measurement runs beside another model runtime:

1. the limit, in a child process, on the backend's own model object
   (``load_classifier`` with the backend's default settings, so LiteRT when the
   cached conversion verifies): the in-process request, decode+preprocess of the
   bench photo and of a 12 MP camera JPEG (:mod:`tools.camera_photo`), the
   backend's forward pass against a plain LiteRT interpreter (interleaved), the
   forward pass by threads x batch size, and the pipeline limit, measured with
   every core busy (one child process per core decoding and forwarding side by
   side, :mod:`tools.bench.busy`) and also summed from parts timed alone
   (:data:`~tools.bench.stats.PIPELINE_LIMIT_DEFINITION`);
2. the monolith (always TensorFlow, a fresh process per request);
3. backend start to ready with the model cached (median of 3 starts);
4. the service under load and the dashboard's HTTP API in front of it, and the
   backend's memory after both loads; then, with both still up, the paired
   rounds (:mod:`tools.bench.paired`): the in-process request, the service and
   the HTTP API at c=1 and c=16 and one window of the busy-cores limit, round
   after round, so that the four ratio targets compare figures taken seconds
   apart (the median of each round's own ratio) rather than minutes apart;
5. a second backend on ``--runtime tensorflow`` at c=1 and c=16, so that a
   reader can tell "persistent process" (monolith vs TensorFlow service) from
   "faster runtime" (TensorFlow vs LiteRT service);
6. 1 vs 2 workers behind the broker.

Every side is labelled with the runtime that served it (``[litert]``,
``[tensorflow]``: the backend's ``info``, the monolith's JSON, a worker's log).
Other processes' CPU share is recorded for each measurement, and a disturbed one
is measured again (the quietest try is kept). A default run takes a few
minutes; ``--quick`` about a minute; ``--from-json`` redraws an earlier run.

One module per job:

* :mod:`~tools.bench.plan`: what to measure and how much (levels, counts, photos, output folders);
* :mod:`~tools.bench.processes`: the child processes and their ready lines (on :mod:`tools.processes`);
* :mod:`~tools.bench.load`: the load generator and its summaries;
* :mod:`~tools.bench.meter`: how loud the machine was (others' CPU), memory;
* :mod:`~tools.bench.limit` and :mod:`~tools.bench.sections`: the measurements;
* :mod:`~tools.bench.paired` (with :mod:`~tools.bench.inprocess`, its in-process request child): the paired rounds;
* :mod:`~tools.bench.decoders`: the decoder comparison (issue 9, item 3);
* :mod:`~tools.bench.stats`, :mod:`~tools.bench.targets`, :mod:`~tools.bench.report`: the maths, the verdicts, the tables;
* :mod:`~tools.bench.figures`: the figure, drawn with Plotly;
* :mod:`~tools.bench.run`: the command line and the whole run.

Needs scikit-image (the photo) and kaleido (the PNG), from the test extra:
``pip install -e '.[test]'`` (``./run.sh bench`` has it).
"""
