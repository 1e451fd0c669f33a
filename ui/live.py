"""URL-kept toggles, and the "Live" one of History and Trends: a fragment that polls a run's listing."""

from __future__ import annotations

import datetime

import streamlit as st

from ui.data import folder_signature

POLL_SECONDS = 3.0


def url_toggle(label: str, key: str, help_text: str) -> bool:
    """A toggle kept in the URL (?key=1), so a shared link opens with it on."""
    if key not in st.session_state:
        st.session_state[key] = st.query_params.get(key) == "1"
    on = st.toggle(label, key=key, help=help_text)
    if on:
        st.query_params[key] = "1"
    else:
        st.query_params.pop(key, None)
    return on


def live_toggle(key: str = "live") -> bool:
    """The Live toggle (?live=1): a shared link keeps following the run."""
    return url_toggle("Live", key, f"Check the run folder every {POLL_SECONDS:g} s and show new checkpoints as "
                                   "they are saved (only a listing of the folder; old results stay cached).")


def follow(run_dir: str, key: str = "live") -> None:
    """Poll `run_dir` cheaply (one listing) while the toggle is on; rerun the page when the listing changes.

    Results of checkpoints that did not change come from the caches, so a rerun computes only what is new.
    """
    seen_key = f"_{key}_seen:{run_dir}"
    st.session_state.setdefault(seen_key, folder_signature(run_dir))

    @st.fragment(run_every=POLL_SECONDS)
    def _poll() -> None:
        now = folder_signature(run_dir)
        if now != st.session_state[seen_key]:
            st.session_state[seen_key] = now
            st.rerun(scope="app")
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S UTC")
        st.caption(f":material/sensors: Live: following {run_dir}; last checked {stamp}.")

    _poll()
