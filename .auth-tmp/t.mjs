import { bcryptHash, bcryptVerify } from './ops/auth.js';
const v = [['U*U','$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],['', '$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.']];
for (const [p,h] of v) console.log(bcryptVerify(p,h));
let t=performance.now(); const h=bcryptHash('hello'); console.log(h, performance.now()-t);
t=performance.now(); console.log(bcryptVerify('hello', h), performance.now()-t);
console.log(bcryptHash('hello',{cost:5}));
