// Starts Swagger UI on Relay's /schema page. It is a file rather than an inline <script> so that a
// Content-Security-Policy may forbid inline scripts; the page names the OpenAPI document in data-openapi-url.
"use strict";
(function () {
  var container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    validatorUrl: null, // the default badge asks validator.swagger.io: nothing leaves the page
  });
})();
