// The first script of csp.html: records every Content-Security-Policy
// violation of the page as [directive, blocked URI], and sets prechatConfig
// as messaging.html does, from a file, since the policy allows no inline
// script. ["document", status] goes to the Messaging log when the snippet's
// document request is answered.
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push([e.effectiveDirective || e.violatedDirective, e.blockedURI]);
});
window.__prechatErrors = [];
window.__prechatApplied = [];
window.prechatConfig = {
  onError: function (err) { window.__prechatErrors.push(String(err && err.message)); },
  onApplied: function (doc) {
    window.__prechatApplied.push(doc);
    embeddedservice_bootstrap.utilAPI.launchChat();
  }
};
(function () {
  var open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url) {
    if (/\/v1\/prechat\//.test(url)) {
      this.addEventListener('load', function () { window.__messagingLog.push(['document', this.status]); });
    }
    return open.apply(this, arguments);
  };
})();
