// Tailwind scans these files for class names; classes built in JS must appear there literally.
module.exports = {
  content: ["./index.html", "./viewer.js", "./components.js", "./list.js", "./detail.js", "./detail-render.js"],
  theme: { extend: {} },
  plugins: [],
};
