// The widget's PDF viewer for pushed documents (docs/subsystems/cobrowse.md, "Document push"): PDF.js renders
// each page into a canvas. No script of the PDF runs: `isEvalSupported: false` (no Function() for fonts),
// `enableScripting` is off (PDF.js's scripting sandbox is never loaded), no annotation layer, no links.
// Loaded by the widget only when a PDF is pushed; the worker is dist/pdf.worker.min.mjs from the hub.

import * as pdfjs from "pdfjs-dist";

async function render(data, host, { workerSrc, maxPages = 20, width = 320 } = {}) {
  pdfjs.GlobalWorkerOptions.workerSrc = workerSrc;
  const doc = await pdfjs.getDocument({ data, isEvalSupported: false, enableXfa: false, disableAutoFetch: true, disableFontFace: false }).promise;
  const pages = Math.min(doc.numPages, maxPages);
  for (let n = 1; n <= pages; n++) {
    const page = await doc.getPage(n);
    const base = page.getViewport({ scale: 1 });
    const scale = width / base.width;
    const viewport = page.getViewport({ scale: scale * (window.devicePixelRatio || 1) });
    const canvas = document.createElement("canvas");
    canvas.width = Math.floor(viewport.width);
    canvas.height = Math.floor(viewport.height);
    canvas.style.width = `${width}px`;
    canvas.setAttribute("data-testid", "cc-doc-page");
    host.appendChild(canvas);
    await page.render({ canvasContext: canvas.getContext("2d"), viewport }).promise;
  }
  return { pages: doc.numPages, shown: pages };
}

window.ccPdfViewer = { render, version: pdfjs.version };
