import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../src/core/engine/backend.js';
function rnd(n:number, seed:number){ let s=seed; const a=new Float32Array(n); for(let i=0;i<n;i++){s=(s*1103515245+12345)%2147483648; a[i]=s/2147483648-0.5;} return a;}
async function run(xs:number[], fs:number[], stride:number){
  const dyShape=[xs[0], (xs[1]-fs[0])/stride+1|0, (xs[2]-fs[1])/stride+1|0, fs[3]];
  const dyN=dyShape.reduce((a,b)=>a*b); const fN=fs.reduce((a,b)=>a*b);
  const out:Record<string,Float32Array>={};
  for (const b of ['cpu','wasm']){
    if (b==='wasm') await selectBackend('wasm'); else await tf.setBackend('cpu');
    const dy=tf.tensor(rnd(dyN,1),dyShape as any); const f=tf.tensor(rnd(fN,2),fs as any);
    out[b]=tf.conv2dTranspose(dy as any,f as any,xs as any,stride,'valid').dataSync() as Float32Array;
  }
  let m=0,s=0; for(let i=0;i<out.cpu.length;i++){m=Math.max(m,Math.abs(out.cpu[i]-out.wasm[i])); s=Math.max(s,Math.abs(out.cpu[i]));}
  console.log(xs, fs, stride, 'rel', m/s);
}
(async()=>{
await run([8,8,8,128],[3,3,128,128],1);
await run([8,5,5,256],[3,3,256,256],1);
await run([8,4,4,512],[3,3,512,512],1);
await run([8,14,14,64],[3,3,64,64],1);
await run([2,8,8,128],[3,3,128,128],1);
await run([8,8,8,16],[3,3,16,16],1);
})();
