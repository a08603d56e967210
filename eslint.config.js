import js from "@eslint/js";
import globals from "globals";

export default [
  {
    ignores: ["static/**", "node_modules/**", "target/**"],
  },
  js.configs.recommended,
  {
    files: ["frontend/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
  },
  {
    // Browser tests run in Node (node --test); the callbacks they pass to
    // page.evaluate() run in Chromium and see the page's globals.
    files: ["tests/browser/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.node, ...globals.browser },
    },
  },
  {
    files: ["*.config.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.node },
    },
  },
];
