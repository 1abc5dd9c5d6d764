// TechTemp sign-in pages: a setup or password reset link carries its token
// in the URL's fragment (#…), which the browser never sends to a server or
// puts in a Referer. This moves it into the form's token field and removes it
// from the address bar (and so from the history). Without JavaScript the
// person pastes the token into the field.
(function () {
  "use strict";
  var field = document.querySelector("input[name=token]");
  var token = location.hash.slice(1);
  if (field && token && !field.value) {
    field.value = decodeURIComponent(token);
    history.replaceState(null, "", location.pathname + location.search);
  }
})();
