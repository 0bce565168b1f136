// Print buttons: <button data-print>. Kept out of the markup so a strict CSP needs no 'unsafe-inline'.
document.addEventListener("click", function (event) {
  if (event.target.closest("[data-print]")) {
    window.print();
  }
});
