"""README "For partners": the generated typed client (run by tests/test_generated_client.py)."""

import os

from porchlight_client import Client
from porchlight_client.api.campaigns import get_neighborhood_total, get_timeseries, get_totals
from porchlight_client.models import GetTimeseriesInterval

client = Client(base_url=os.environ.get("PORCHLIGHT_URL", "https://porchlight.example"))
totals = get_totals.sync(campaign="current", client=client)
print(f"{totals.campaign}: {totals.total} porch lights, goal {totals.goal}")
allentown = get_neighborhood_total.sync(campaign="current", slug="allentown", client=client)
print(f"{allentown.name}: {allentown.residents} residents, {allentown.businesses} businesses")
days = get_timeseries.sync(campaign="current", client=client, interval=GetTimeseriesInterval.DAY)
for point in days.points:
    print(point.start.date(), point.total, point.cumulative)
