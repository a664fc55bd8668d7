"""README "For partners": the totals and the timeseries in pandas (run by tests/test_generated_client.py)."""

import json
import os
from urllib.request import urlopen

import pandas as pd

campaign = os.environ.get("PORCHLIGHT_URL", "https://porchlight.example") + "/api/v1/campaigns/current"

totals = pd.read_csv(f"{campaign}/totals.csv")
print(totals.sort_values("total", ascending=False).head(5).to_string(index=False))

with urlopen(f"{campaign}/timeseries?interval=day") as response:
    points = pd.DataFrame(json.load(response)["points"])
points["start"] = pd.to_datetime(points["start"])
print(points.set_index("start")[["total", "cumulative"]].to_string())
