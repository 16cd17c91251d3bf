// Styles the widget adds for the model card, the example prompts, the chosen mark's
// contrast, bars on one scale and touch targets on small screens (inside its shadow root,
// with widget.js's CSS).

export const WIDGET_CSS = `
.about { margin: 0 0 0.5rem; font-size: 0.82rem; color: var(--muted); }
.about-name { color: var(--text); font-family: var(--mono); font-size: 0.8rem; }
.examples { display: flex; flex-wrap: wrap; align-items: center; gap: 0.3rem; margin: 0.35rem 0 0; font-size: 0.8rem; }
.examples > span { color: var(--muted); }
button.example { min-height: 2.75rem; padding: 0.2rem 0.6rem; border-radius: 999px; background: var(--accent-soft); border-color: transparent; font-size: 0.8rem; }
.outside[data-label]::before { content: attr(data-label); }
.chosen-mark { color: var(--gpt2-chosen-text, #6b4a00); }
:host([theme="dark"]) .chosen-mark { color: var(--gpt2-chosen-text, #f0c060); }
@media (prefers-color-scheme: dark) { :host([theme="auto"]) .chosen-mark { color: var(--gpt2-chosen-text, #f0c060); } }
.cand { grid-template-columns: minmax(0, 7rem) minmax(0, 1fr) 4.8rem; }
@container (max-width: 26rem) {
  .cand { grid-template-columns: minmax(0, 5.5rem) minmax(0, 1fr) 4.4rem; }
  button, .fields input, textarea { min-height: 2.75rem; }
  .chip { min-height: 2.75rem; min-width: 2.75rem; }
  button.tok { min-height: 2.75rem; }
  button.link { min-height: 2.75rem; padding: 0 0.25rem; }
}
`;
