"""ckptlib dashboard: the router — page config, the shared sidebar, navigation. Nothing else."""

import streamlit as st

from ui.widgets import sidebar, storage_operation

st.set_page_config(page_title="ckptlib", page_icon=":material/inventory_2:", layout="wide")
page = st.navigation(
    [
        st.Page("pages/history.py", title="History", icon=":material/history:", default=True),
        st.Page("pages/variables.py", title="Variables", icon=":material/table_chart:"),
        st.Page("pages/diff.py", title="Diff", icon=":material/difference:"),
        st.Page("pages/trends.py", title="Trends", icon=":material/show_chart:"),
        st.Page("pages/graph.py", title="Graph", icon=":material/account_tree:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
    ]
)
with storage_operation():  # a bucket prefix as root: each folder listed once per rerun
    sidebar()
    page.run()
