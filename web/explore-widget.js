// Styles the widget adds for the model card, the example prompts, Step's first pick, the
// space marker's explanation and small screens (inside its shadow root, with widget.js's CSS).

export const WIDGET_CSS = `
.about { margin: 0 0 0.5rem; font-size: 0.82rem; color: var(--muted); }
.about-name { color: var(--text); font-family: var(--mono); font-size: 0.8rem; }
.examples { display: flex; flex-wrap: wrap; align-items: center; gap: 0.3rem; margin: 0.35rem 0 0; font-size: 0.8rem; }
.examples > span { color: var(--muted); }
button.example { min-height: 2.75rem; padding: 0.2rem 0.6rem; border-radius: 999px; background: var(--accent-soft); border-color: transparent; font-size: 0.8rem; }
`;
