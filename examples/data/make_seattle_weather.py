#!/usr/bin/python3
"""Regenerates seattle_weather.csv from Debian's python3-vega-datasets (Seattle daily weather,
2012-2015, NOAA data as distributed by the Vega project): the numeric columns nnc's csv() needs —
precipitation (mm), temp_min (C), wind (m/s), the season as sin/cos of the day of the year, and
the target temp_max (C). The weather label and the date itself are dropped.
Usage: make_seattle_weather.py [path/to/seattle-weather.csv]"""
import csv
import datetime
import math
import os
import sys

SOURCE = sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv"
out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seattle_weather.csv")
with open(SOURCE) as f, open(out_path, "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["precipitation", "temp_min", "wind", "season_sin", "season_cos", "temp_max"])
    for row in csv.DictReader(f):
        day = datetime.datetime.strptime(row["date"], "%Y/%m/%d").timetuple().tm_yday
        angle = 2 * math.pi * day / 365.25
        w.writerow([row["precipitation"], row["temp_min"], row["wind"], f"{math.sin(angle):.5f}",
                    f"{math.cos(angle):.5f}", row["temp_max"]])
