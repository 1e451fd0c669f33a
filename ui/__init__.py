"""Streamlit glue between the pages and ckptlib: cached loaders, shared widgets, plotly figures."""
