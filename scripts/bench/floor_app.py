"""The benchmark's floor: a bare Flask app doing only json → numpy → predict → json, no checks.

    BENCH_MODEL_PICKLE=model.pkl gunicorn -w 2 --chdir scripts/bench floor_app:app

It is the most a Flask + gunicorn scorer can do on a machine; scoring-server is measured against it.
"""
import io
import json
import os
import pickle

import numpy as np
from flask import Flask, Response, request

with open(os.environ["BENCH_MODEL_PICKLE"], "rb") as f:
    model = pickle.load(f)

app = Flask(__name__)


@app.post("/invocations")
def invocations():
    if request.content_type == "text/csv":
        features = np.loadtxt(io.BytesIO(request.data), delimiter=",", skiprows=1, ndmin=2)
    else:
        payload = json.loads(request.data)
        if "dataframe_records" in payload:
            features = np.array([list(row.values()) for row in payload["dataframe_records"]])
        else:
            features = np.array(payload["dataframe_split"]["data"])
    return Response(json.dumps({"predictions": model.predict(features).tolist()}), mimetype="application/json")


@app.get("/ping")
def ping():
    return "\n"
