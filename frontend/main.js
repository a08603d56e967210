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
