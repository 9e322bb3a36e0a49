// The microphone as it is: browsers run voice-call processing on getUserMedia audio by default
// (automatic gain control, noise suppression, echo cancellation). Gain control re-levels words
// within an utterance and noise suppression reshapes the spectrum: a pitch workbench should
// analyse the voice as it reached the microphone, and the models were trained on unprocessed
// audio (measured: through Chromium's processed path a held-out "three one eight" came back
// with its first word boosted ~6 dB less than the rest and was heard as "two one one eight").
// Every audio request of the page (Gradio's record button) asks for the raw signal.
(() => {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia || media.__echoRaw) return;
  const RAW = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
  const original = media.getUserMedia.bind(media);
  media.getUserMedia = (constraints = {}) => {
    if (constraints && constraints.audio) {
      const audio = constraints.audio === true ? {} : constraints.audio;
      constraints = {...constraints, audio: {...RAW, ...audio}};
    }
    return original(constraints);
  };
  media.__echoRaw = true;
})();
