// Chunked, resumable upload (see athar/web/uploads.py). Each file is announced, then
// sent a chunk at a time at the offset the server reports; after a network error the
// script asks the server where the upload stands and carries on from there. The file's
// name|size|modified time goes with the announcement, so that after a server restart
// (and a new login) choosing the same file again resumes where it stopped.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var list = document.getElementById("upload-list");
  var csrf = form.dataset.csrf;
  var chunkSize = parseInt(form.dataset.chunk, 10) || 1048576;
  var pending = {};  // file key -> upload id, so that pressing Upload again resumes

  function json(method, url, body) {
    var headers = { "X-CSRF-Token": csrf };
    if (body !== undefined && !(body instanceof Blob)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" })
      .then(function (r) {
        return r.json().then(function (data) { data.httpStatus = r.status; return data; });
      });
  }

  function sleep(ms) { return new Promise(function (ok) { setTimeout(ok, ms); }); }

  function send(file, row) {
    var key = file.name + "|" + file.size + "|" + file.lastModified;
    var bar = row.querySelector("progress");
    var text = row.querySelector("span");
    var start = pending[key]
      ? json("GET", "/api/uploads/" + pending[key])
      : json("POST", "/api/uploads",
             { name: file.name, size: file.size, note: form.note.value, resume_key: key });
    var failures = 0;
    function step(status) {
      if (status.ok === false) { throw new Error(status.error); }
      pending[key] = status.id;
      bar.value = status.offset / file.size;
      if (status.done) {
        delete pending[key];
        text.textContent = form.dataset.msgDone + " · " + status.item.slice(0, 12);
        row.dataset.item = status.item;
        return null;
      }
      var end = Math.min(status.offset + chunkSize, file.size);
      return json("PUT", "/api/uploads/" + status.id + "?offset=" + status.offset,
                  file.slice(status.offset, end))
        .then(function (next) {
          failures = 0;
          if (next.httpStatus === 409) { return step(next); }
          return step(next);
        }, function () {
          failures += 1;
          text.textContent = form.dataset.msgRetry;
          return sleep(Math.min(30000, 1000 * failures)).then(function () {
            return json("GET", "/api/uploads/" + status.id).then(step);
          });
        });
    }
    return start.then(step).catch(function (err) {
      row.classList.add("error");
      text.textContent = form.dataset.msgFailed + ": " + err.message;
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var files = Array.prototype.slice.call(document.getElementById("files").files);
    var chain = Promise.resolve();
    files.forEach(function (file) {
      var row = document.createElement("li");
      var label = document.createElement("b");
      label.textContent = file.name + " ";
      var bar = document.createElement("progress");
      bar.max = 1; bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      var text = document.createElement("span");
      row.appendChild(label); row.appendChild(bar); row.appendChild(text);
      list.appendChild(row);
      chain = chain.then(function () { return send(file, row); });
    });
  });
}());
