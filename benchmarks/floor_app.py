"""The floor for dashboard_render.py: a Streamlit page with one small Plotly heatmap and nothing else.

What Streamlit plus Plotly cost in this browser on this machine before the dashboard adds anything.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.title("One heatmap")
z = np.random.default_rng(0).random((32, 32))
st.plotly_chart(go.Figure(go.Heatmap(z=z, colorscale="Blues")), key="floor")
