// A short load smoke: the thresholds decide whether the release passes.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  thresholds: {
    http_req_duration: ['p(95)<500'],   // ms
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
  },
};

const BASE = __ENV.SMOKEGATE_BASE_URL;

export default function () {
  const res = http.get(`${BASE}/api/items`);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has items': (r) => r.json('items').length > 0,
  });
}
