"""History page: a run's checkpoints on a timeline and in a table, problems explained in words."""

import time

import pandas as pd
import streamlit as st

from ui import backend, data, figures, live, steps
from ui.review import Target, open_review, show_notes
from ui.review_forms import note_form
from ui.widgets import current

selection = current()
st.title("History")
review = open_review()
if selection.history is None:
    st.info("Choose a root folder that holds checkpoints in the sidebar.")
    st.stop()
history = selection.history
st.caption(history.path)
if live.live_toggle():
    live.follow(history.path)
verdicts = review.verdicts(history.path)

if live.url_toggle("Verify checksums", "verify", "Read every tensor of every checkpoint and check its crc32c: "
                   "finds damaged data shards that a listing cannot see (reads every byte)."):
    history = data.verified_history(history.path)
    checked = [e for e in history.checkpoints if e.checksums in ("ok", "damaged")]
    damaged = [e.name for e in checked if e.checksums == "damaged"]
    if damaged:
        st.error(f"Checksums verified: {len(damaged)} of {len(checked)} complete checkpoint(s) damaged "
                 f"({', '.join(damaged[:6])}{' …' if len(damaged) > 6 else ''}); see their problem below.")
    elif checked:
        st.success(f"Checksums verified: every tensor of the {len(checked)} complete checkpoint(s) matches its "
                   "stored crc32c.")
    else:
        st.info("Checksums: this run has no complete checkpoint to verify.")
else:
    st.caption("Checksums unverified: turn on *Verify checksums* to read every tensor and check its crc32c.")
entries = history.checkpoints
latest = history.latest
cols = st.columns(4)
cols[0].metric("Checkpoints", len(entries))
cols[1].metric("Latest step", latest.training_step if latest and latest.training_step is not None else "—")
cols[2].metric("On disk", backend.human_bytes(sum(e.size_bytes for e in entries)))
cols[3].metric("With problems", sum(1 for e in entries if e.has_problem))

if history.problem:
    st.warning(history.problem)
for note in history.notes:
    st.info(note)
EXPLAIN = {
    "orphan": "on disk but not listed in the `checkpoint` state file: TensorFlow's restore-latest ignores them "
    "(often left by an older run in the same folder, or by a crash before the state file was updated).",
    "missing": "listed in the state file but none of their files exist (deleted by hand, or not copied).",
    "incomplete": "unusable as they are: an index or a data shard is missing, truncated or corrupt.",
    "preserved": "kept on purpose by `keep_checkpoint_every_n_hours`, outside the `max_to_keep` window.",
    "unlisted": "on disk, with no readable state file to say which ones TensorFlow keeps.",
    "damaged": "a tensor fails its crc32c check: the data shard was changed after TensorFlow wrote it.",
}
for status, sentence in EXPLAIN.items():
    names = [e.name for e in entries if e.status == status]
    if status == "unlisted" and steps.keras_files(names):
        continue  # Keras files: a note above says Keras keeps no state file, and that they are all usable
    if names:
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        (st.info if status == "preserved" else st.warning)(f"**{len(names)} {status}** ({shown}): {sentence}")

st.plotly_chart(figures.timeline(history, verdicts), width="stretch")  # draws a sentence when it has nothing

table = pd.DataFrame(
    {
        "checkpoint": [e.name for e in entries],
        steps.number_label(history): pd.array([e.step for e in entries], dtype="Int64"),
        # Text, not datetimes: an unknown time reads "unknown" (not None); ISO text still sorts by time.
        "saved (UTC)": [time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.mtime)) if e.mtime else "unknown"
                        for e in entries],
        "size": [backend.human_bytes(e.size_bytes) for e in entries],
        "status": [e.status for e in entries],
        "verdict": [verdicts.get(e.prefix, "") for e in entries],
        "in state": [e.in_state for e in entries],
        "complete": [e.complete for e in entries],
        ".meta": [e.has_meta for e in entries],
        "details": [e.problem or "" for e in entries],
    }
)
if any(e.checksums in ("ok", "damaged") for e in entries):
    table.insert(5, "crc32c", [e.checksums if e.checksums in ("ok", "damaged") else "—" for e in entries])
if any(e.stored_step is not None and e.stored_step != e.step for e in entries):  # TF2: save counter != step
    table.insert(2, "training step", pd.array([e.stored_step for e in entries], dtype="Int64"))
st.dataframe(table, hide_index=True, width="stretch",
             column_config={"details": st.column_config.TextColumn("details", width="large",
                                                                   help="What is wrong, or what is inferred")})
# "With problems" above counts these; checkpoints kept on purpose have an explanation, not a problem.
problems = [e for e in entries if e.problem and e.has_problem]
remarks = [e for e in entries if e.problem and not e.has_problem]
for title, listed in ((f"Problems in full ({len(problems)})", problems),
                      (f"About the other checkpoints ({len(remarks)})", remarks)):
    if listed:
        with st.expander(title, expanded=listed is problems and len(listed) <= 3):
            st.markdown("\n".join(f"- **{e.name}**: {e.problem}" for e in listed))

st.subheader("Notes")
show_notes(review.notes(run=history.path), empty="No notes on this run or its checkpoints yet.")
chosen = selection.checkpoint
targets = {"checkpoint": Target(history.path, checkpoint=chosen.prefix)} if chosen else {}
targets["run"] = Target(history.path)
note_form(review, "history", "history", targets,
          {"checkpoint": f"checkpoint {chosen.name}" if chosen else "", "run": "the whole run"})
