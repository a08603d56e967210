// Entry point bundled by Vite into static/assets/. Loaded by templates as a
// module script; there are no inline scripts and nothing comes from a CDN.
import "./main.css";
import htmx from "htmx.org";

window.htmx = htmx;

// The server renders <meta name="csrf-token" content="..."> in base.html.
// Send it on every htmx request; plain form posts carry it as a hidden field.
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : null;
}

document.addEventListener("htmx:configRequest", (event) => {
  const token = csrfToken();
  if (token) {
    event.detail.headers["X-CSRF-Token"] = token;
  }
});

// Let htmx swap error responses too: the server retargets them into the
// page's message area (#flash-area) with a readable message.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "[45]..", swap: true, error: true },
];

// Destructive actions ask first: <form data-confirm="Revoke this token?">.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm) {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }
});

// The side navigation folds away on small screens behind a "Menu" button.
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-toggle]") : null;
  if (!button) return;
  const target = document.getElementById(button.getAttribute("data-toggle"));
  if (!target) return;
  const open = target.classList.toggle("hidden") === false;
  button.setAttribute("aria-expanded", String(open));
});
