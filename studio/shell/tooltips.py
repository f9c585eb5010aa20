"""Tooltips for the controls whose label alone does not say what they do, in one table.

Keys are (the window's attribute for a view, the view's attribute for a control, optional dict key);
:func:`apply_tooltips` sets each one that the control does not already have (a feature that sets its
own tooltip, or changes it with the state, wins). ``tests/test_window_fit.py`` checks that every
button, spin box and combo box of the window ends up with one.
"""

from __future__ import annotations

from typing import Any

#: The main window (studio.shell.window.MainWindow; not imported here, which would be a cycle).
MainWindow = Any

TOOLTIPS: dict[tuple[str, ...], str] = {
    ("directions_view", "find_button"): "Find the chosen directions in the worker (progress and Cancel below)",
    ("directions_view", "reset_button"): "Every direction slider back to 0: the point as it was",
    ("directions_view", "load_button"): "Load a direction set (JSON, from Save or latent-studio directions)",
    ("directions_view", "export_gif_button"): "A GIF sweeping every direction at once from the moved point, with its sidecar",
    ("directions_view", "local_button"): "Principal directions of the latents nearest the point (a neighbourhood's PCA)",
    ("directions_view", "go_button"): "Move the Explore point to a - b + c",
    ("directions_view", "local_k"): "Local directions to find, one grid row each",
    ("map_view", "compute_button"): "Encode the held-out images (or draw from the prior) and lay them out in 2-D",
    ("map_view", "mode_buttons", "click"): "A click decodes the point under it into Explore (between points: their "
                                           "latents averaged by distance)",
    ("map_view", "mode_buttons", "lasso-a"): "Drag around points: group A of a two-groups direction (Directions tab)",
    ("map_view", "mode_buttons", "lasso-b"): "Drag around points: group B of a two-groups direction (Directions tab)",
    ("data_panel", "batch_spin"): "Examples per training step",
    ("data_panel", "seed_spin"): "Seed for the weights, the batch order and the fixed-z samples: the same seed, the same run",
    ("train_panel", "buttons", "start"): "Train the built model (Space); for \"Train for\" steps, or until Stop",
    ("train_panel", "buttons", "pause"): "Pause training, keeping the optimiser's state (Space)",
    ("train_panel", "buttons", "resume"): "Continue a paused run (Space)",
    ("train_panel", "buttons", "stop"): "End this training run (Ctrl+.); the model stays for exploring",
    ("loss_panel", "smooth_check"): "Draw an exponential moving average of each curve over the raw points",
    ("loss_panel", "log_check"): "Logarithmic loss axis (for losses that span orders of magnitude)",
    ("explore_panel", "random_button"): "Draw z from the prior and decode it",
    ("explore_panel", "reset_button"): "Every slider back to the prior's centre",
    ("traversal_view", "index_spin"): "The held-out example whose encoding the traversal sweeps around",
    ("traversal_view", "steps_spin"): "Columns of the traversal: values from low to high along each dimension",
    ("traversal_view", "gif_button"): "Export the sweep as an animated GIF, rendered by the worker with its sidecar",
    ("traversal_view", "mp4_button"): "Export the sweep as an MP4 video, rendered by the worker with its sidecar",
    ("interpolate_view", "sliders_button"): "Add the current slider point as the next keyframe",
    ("interpolate_view", "example_button"): "Add the held-out example of that number (encoded) as the next keyframe",
    ("interpolate_view", "example_spin"): "Which held-out example \"Add held-out #\" adds",
    ("interpolate_view", "random_button"): "Add a draw from the prior as the next keyframe",
    ("interpolate_view", "remove_button"): "Remove the selected keyframe",
    ("interpolate_view", "clear_button"): "Remove every keyframe",
    ("interpolate_view", "frames_spin"): "Frames of the whole path",
    ("interpolate_view", "fps_spin"): "Playback and export speed, frames per second",
    ("interpolate_view", "speed_check"): "Space the frames evenly along the path's length in z, not evenly per segment",
    ("interpolate_view", "render_button"): "Decode the path in the worker (it re-decodes while training)",
    ("interpolate_view", "play_button"): "Play the decoded frames",
    ("interpolate_view", "gif_button"): "Export the path as a GIF, with a sidecar that re-renders it",
    ("interpolate_view", "mp4_button"): "Export the path as an MP4 video, with a sidecar that re-renders it",
    ("interpolate_view", "strip_button"): "Export the frames side by side as one PNG",
    ("interpolate_view", "latents_button"): "Save the path's latents as .npy or .json",
    ("morph", "view", "swap_button"): "Exchange images A and B",
    ("morph", "view", "all_button"): "Take every dimension from B",
    ("morph", "view", "none_button"): "Take no dimension from B (the result is A)",
    ("morph", "view", "result_export"): "Save the morphed image as a PNG",
    ("morph", "view", "row_button"): "Add image A as a row of the style grid (its content kept)",
    ("morph", "view", "col_button"): "Add image B as a column of the style grid (its checked dimensions given)",
    ("morph", "view", "clear_button"): "Empty the style grid",
    ("morph", "view", "grid_export"): "Save the style grid as a PNG",
    ("flow", "view", "from_combo"): "The first image of the interpolation",
    ("flow", "view", "to_combo"): "The second image of the interpolation",
    ("flow", "view", "seed_spin"): "Seed of the temperature samples",
    ("flow", "view", "sample_button"): "Draw 8 samples at the temperature set",
    ("flow", "view", "a_spin"): "The held-out example of the first endpoint",
    ("flow", "view", "b_spin"): "The held-out example of the second endpoint",
    ("flow", "view", "frames_spin"): "Frames between the two images (their endpoints exact)",
    ("browser", "view", "prev_button"): "Previous page of examples",
    ("browser", "view", "next_button"): "Next page of examples",
    ("browser", "view", "open_button"): "Add image files to \"Your images\" (or drop them on the window)",
    ("browser", "view", "buttons", "sliders"): "Encode the chosen image and move the sliders to its posterior mean",
    ("browser", "view", "buttons", "keyframe"): "Add the chosen image as an interpolation keyframe",
    ("browser", "view", "buttons", "morph-a"): "Use the chosen image as the morph's image A (content)",
    ("browser", "view", "buttons", "morph-b"): "Use the chosen image as the morph's image B (style)",
    ("banner", "button"): "Start a fresh worker and restore the last checkpoint",
    ("runs", "view", "refresh_button"): "Read the runs folder again (the window's runs and registered folders)",
    ("runs", "view", "add_button"): "List a run folder trained elsewhere (latent-studio train --out DIR)",
    ("runs", "view", "term_combo"): "The loss term drawn for every compared run (terms all of them logged)",
    ("runs", "view", "csv_button"): "Save the metric table of the compared runs as CSV",
    ("runs", "view", "png_button"): "Save a picture of the comparison: curves, samples and table",
}


def apply_tooltips(window: MainWindow) -> int:
    """Set every :data:`TOOLTIPS` entry on ``window`` that its control lacks; the number set.

    Raises
    ------
    AttributeError, KeyError
        A key that no longer names a control (the table must follow the views).
    """
    done = 0
    for path, text in TOOLTIPS.items():
        target = window
        for part in path:
            target = target[part] if isinstance(target, dict) else getattr(target, part)
        if not target.toolTip():
            target.setToolTip(text)
            done += 1
    return done
