"""Drawing: pure functions from records to Plotly figures and escaped HTML (no model code, no Streamlit).

theme (look), highlights (token colours), prediction (bars), attention (maps, grid, rollout), methods,
heads, depth, tasks, text (plain descriptions), report (standalone HTML), notebook (Jupyter display).
"""
