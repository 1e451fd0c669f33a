"""ckptlib dashboard: the router — page config, the shared sidebar, navigation. Nothing else."""

import streamlit as st

from ui.widgets import sidebar

st.set_page_config(page_title="ckptlib", page_icon="📦", layout="wide")
page = st.navigation(
    [
        st.Page("pages/history.py", title="History", icon="🕒", default=True),
        st.Page("pages/variables.py", title="Variables", icon="🔢"),
    ]
)
sidebar()
page.run()
