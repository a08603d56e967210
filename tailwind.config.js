/** @type {import('tailwindcss').Config} */
export default {
  // Paths are relative to this file, whatever directory npm runs in.
  content: {
    relative: true,
    files: ["./templates/**/*.html", "./src/**/*.rs"],
  },
  theme: {
    extend: {},
  },
  plugins: [],
};
