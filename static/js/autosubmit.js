// A <select data-autosubmit> sends its form as soon as it changes (the claim list's status filter).
// Kept out of the markup (no onchange=) so the Content-Security-Policy needs no 'unsafe-inline'.
document.addEventListener("change", function (event) {
  var field = event.target.closest("[data-autosubmit]");
  if (field && field.form) {
    field.form.submit();
  }
});
