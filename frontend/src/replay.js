// The recordings player page (templates/recordings/play.html): fetch the cast once, play it
// with asciinema-player, a speed choice and a list of the checks' markers to jump to. The
// player takes its speed only when created, so a new speed re-creates it where it was.
import * as AsciinemaPlayer from 'asciinema-player';

import { formatTime, readCast } from './cast.js';

const IDLE_LIMIT_SECONDS = 2;

function init(root) {
  const el = (role) => root.querySelector(`[data-role="${role}"]`);
  const speed = el('speed');
  const skipIdle = el('skip-idle');
  let player = null;
  let playing = false;
  let cast = null;

  function mount() {
    if (player) player.dispose();
    const opts = {
      cols: cast.cols,
      rows: cast.rows,
      speed: Number(speed.value) || 1,
      preload: true,
      fit: 'width',
    };
    if (skipIdle.checked) opts.idleTimeLimit = IDLE_LIMIT_SECONDS;
    playing = false;
    player = AsciinemaPlayer.create({ data: cast.data }, el('player'), opts);
    player.addEventListener('play', () => { playing = true; });
    player.addEventListener('playing', () => { playing = true; });
    player.addEventListener('pause', () => { playing = false; });
    player.addEventListener('ended', () => { playing = false; });
  }

  function changeSpeed() {
    // Same idle limit, same clock: the new player goes on from where the old one was.
    const at = player.getCurrentTime();
    const wasPlaying = playing;
    mount();
    if (at > 0) player.seek(at).then(() => wasPlaying && player.play());
    else if (wasPlaying) player.play();
  }

  function listMarkers() {
    const list = el('markers');
    list.replaceChildren();
    el('no-markers').hidden = cast.markers.length > 0;
    for (const marker of cast.markers) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'btn btn-ghost replay-marker';
      if (/ passed: /.test(marker.label)) button.classList.add('replay-marker-passed');
      const time = document.createElement('time');
      time.textContent = formatTime(marker.time);
      button.append(time, ' ', marker.label);
      // By index, not time: with idle pauses skipped the player's clock is not the file's.
      button.addEventListener('click', () => player.seek({ marker: marker.index }).then(() => player.play()));
      item.append(button);
      list.append(item);
    }
  }

  speed.addEventListener('change', changeSpeed);
  // Skipping pauses changes the clock itself: start again from the beginning.
  skipIdle.addEventListener('change', mount);

  fetch(root.dataset.castUrl, { credentials: 'same-origin' })
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.text();
    })
    .then((text) => {
      cast = readCast(text);
      mount();
      listMarkers();
    })
    .catch((error) => {
      console.error('recording not loaded', error);
      el('error').hidden = false;
    });
}

const root = document.getElementById('replay');
if (root) init(root);
