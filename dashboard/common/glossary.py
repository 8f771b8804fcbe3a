"""What each number on the page means: the one place the dashboard's hover texts and info icons are written.

Each text says exactly what was measured, by whom, from when to when, as the
code measures it (model_backend/server.py for a service request's stages,
dashboard/classify/service.py for its round trip, model_backend/monolith.py
and dashboard/monolith/runner.py for a monolith run). Change the measurement,
change the text here.
"""

from __future__ import annotations

#: a service request, as the result card shows it (keys: the backend's protocol.STAGES, plus the card's own)
SERVICE_TERMS = {
    "roundtrip": "Round trip: how long the dashboard waited for this image's answer, measured by the dashboard from "
                 "sending the image to the backend over ZeroMQ until the reply was read (a retry after a timeout "
                 "included). It is the backend total plus the trip both ways; your browser's upload to the dashboard "
                 "is not in it.",
    "batch_size": "Batch size: how many images shared this image's forward pass. The backend groups requests that "
                  "arrive together (up to its max batch, waiting at most its max wait) and runs the model once for all.",
    "queue": "Queue: time waiting inside the backend, first for a free decode thread, then for its batch's forward "
             "pass to start (other images still decoding, or the previous batch still running).",
    "decode": "Decode: reading the image file into pixels, resized to the model's input size (backend).",
    "preprocess": "Preprocess: turning those pixels into the model's input (float32, scaled and normalised; backend).",
    "inference": "Inference: the model's forward pass for the whole batch. Every image of one batch shows the same time.",
    "total": "Backend total: from the backend receiving the request until its reply was ready. It is queue + decode "
             "+ preprocess + inference, plus picking the top classes and writing the reply.",
}

#: a monolith run (keys: protocol.MONOLITH_STAGES, plus the panel's own rows)
MONOLITH_TERMS = {
    "import": "Import TensorFlow: the `import tensorflow` the monolith pays for every image.",
    "model_load": "Build + load model: building the network and loading its weights from disk.",
    "preprocess": "Decode + preprocess: reading the image file into pixels and turning them into the model's input.",
    "inference": "Inference: the first (cold) forward pass of a freshly built model, for this one image.",
    "rest": "Start-up and exit, not in any stage: the wall clock minus the four stages above (which the "
            "monolith times itself). Starting the process (Python and its modules), reading the image file, and after "
            "inference printing the result and exiting (TensorFlow's shutdown).",
    "total": "Total (reported): the monolith's own estimate from its process's creation to the end of inference.",
    "runtime": "The monolith always runs on TensorFlow, whatever runtime the service uses (the status bar says "
               "which one that is).",
    "wall": "Wall clock: what you waited, measured by the dashboard from starting the monolith process until it exited.",
}

#: the status bar
STATUS_TERMS = {
    "in_flight": "Requests in flight: requests the backend has accepted and not answered yet (queued, decoding or in "
                 "inference) at the last status check, out of the most it accepts before it answers 'overloaded'.",
    "broker_waiting": "Waiting at the broker: requests no worker has taken yet, out of the most the broker keeps "
                      "before it answers 'overloaded'.",
    "broker_in_flight": "In flight at workers: requests the broker's workers are working on now.",
    "capacity": "Queue capacity: the most requests the backend accepts at once before it answers 'overloaded' "
                "(a setting, not the current depth).",
    "runtime": "Runtime: what runs the model in the backend (LiteRT with XNNPACK, or TensorFlow).",
    "batching": "Batching: on TensorFlow the backend runs up to this many images in one forward pass, waiting at "
                "most this long for a batch to fill; on LiteRT a forward pass is cheap enough that it runs one image "
                "per interpreter instead, side by side on every core.",
}


def unsure_text(top_p: float, unsure_below: float) -> str:
    """Why a result is marked unsure."""
    return (f"Unsure: the top class has {top_p:.1%} probability, below this dashboard's threshold of "
            f"{unsure_below:.0%} (setting unsure_below). The model may well be wrong.")
