"""WGS-84 → GCJ-02 pairs as published with two independent implementations (eviltransform's and
coordtransform's test values); tracking/coords.py and static/web/coords.js are both checked against them."""

# ((WGS-84 lat, lon), (GCJ-02 lat, lon))
PAIRS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai (eviltransform)
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen (eviltransform)
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing (eviltransform)
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),  # Beijing (coordtransform)
]
