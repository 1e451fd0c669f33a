"""Review page: every note and verdict under the root, filterable (filters in the URL), and run reports."""

import os

import streamlit as st

from ui import data
from ui.review import NO_VERDICT, VERDICTS, notes_table, open_review, run_label, show_notes
from ui.review_forms import report_section
from ui.widgets import current, errors_shown, url_picker

ANY = "any"

selection = current()
st.title("Review")
review = open_review()
root = selection.root
if not os.path.isdir(root):
    st.info("Choose a root folder in the sidebar.")
    st.stop()
st.caption(f"Notes on the runs under {root}" + (f", kept in {review.store.display_url}" if review.available else ""))

notes = review.notes(under=root)
runs_noted = sorted({run_label(n.run, root) for n in notes})
authors = sorted({n.author for n in notes}, key=str.lower)
c1, c2, c3 = st.columns(3)
verdict = url_picker(c1.selectbox, "Verdict", [ANY, *VERDICTS, NO_VERDICT], "rv_verdict", default=ANY)
author = url_picker(c2.selectbox, "Author", [ANY, *authors], "rv_author", default=ANY)
run = url_picker(c3.selectbox, "Run", [ANY, *runs_noted], "rv_run", default=ANY)
shown = [n for n in notes
         if (verdict == ANY or (n.verdict or NO_VERDICT) == verdict)
         and (author == ANY or n.author == author)
         and (run == ANY or run_label(n.run, root) == run)]

counts = {v: sum(1 for n in shown if n.verdict == v and n.current) for v in VERDICTS}
for col, (name, count) in zip(st.columns(len(counts) + 1), [("notes", len(shown)), *counts.items()]):
    col.metric(name, count)
if review.available and not notes:
    st.info("No notes yet: add them on any page (History, Variables, Diff, Trends, Graph, Evaluate) "
            "(or with `python -m ckptlib note`).")
elif shown:
    st.dataframe(notes_table(shown, root), hide_index=True, width="stretch",
                 column_config={"created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm"),
                                "view": st.column_config.LinkColumn("view", display_text="open"),
                                "text": st.column_config.TextColumn("text", width="large")})
    with st.expander(f"The notes in full ({len(shown)})", expanded=len(shown) <= 5):
        show_notes(shown, root=root, links=True)
elif notes:
    st.caption(f"None of the {len(notes)} notes matches these filters.")

with errors_shown():
    runs = data.runs(root)
report_section(review, runs, selection.run.name if selection.run else None)
