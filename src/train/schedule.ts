import { expectFinite, expectInteger } from '../engine/check.js';

/** A learning rate as a function of the (0-based) optimizer step. */
export interface Schedule {
  lrAt(step: number): number;
}

/** Multiplies the base rate by `gamma` at each milestone step. */
export class StepSchedule implements Schedule {
  constructor(
    readonly baseLr: number,
    readonly milestones: readonly number[],
    readonly gamma = 0.1,
  ) {
    expectFinite(baseLr, 'baseLr', 'StepSchedule');
    milestones.forEach((m) => expectInteger(m, 'milestone', 0, 'StepSchedule'));
  }
  lrAt(step: number): number {
    return this.baseLr * this.gamma ** this.milestones.filter((m) => step >= m).length;
  }
}

/** Cosine decay from baseLr to minLr over totalSteps. */
export class CosineSchedule implements Schedule {
  constructor(
    readonly baseLr: number,
    readonly totalSteps: number,
    readonly minLr = 0,
  ) {
    expectFinite(baseLr, 'baseLr', 'CosineSchedule');
    expectInteger(totalSteps, 'totalSteps', 1, 'CosineSchedule');
  }
  lrAt(step: number): number {
    const t = Math.min(1, Math.max(0, step / this.totalSteps));
    return this.minLr + (this.baseLr - this.minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
  }
}

/** Linear warm-up from `startFactor * inner(0)` over `warmupSteps`, then the inner schedule. */
export class WarmupSchedule implements Schedule {
  constructor(
    readonly inner: Schedule,
    readonly warmupSteps: number,
    readonly startFactor = 0.1,
  ) {
    expectInteger(warmupSteps, 'warmupSteps', 0, 'WarmupSchedule');
  }
  lrAt(step: number): number {
    const lr = this.inner.lrAt(step);
    if (step >= this.warmupSteps) return lr;
    const f = this.startFactor + (1 - this.startFactor) * (step / this.warmupSteps);
    return lr * f;
  }
}

export class ConstantSchedule implements Schedule {
  constructor(readonly lr: number) {}
  lrAt(): number {
    return this.lr;
  }
}
