//! Seeded random streams. Each consumer draws from its own ChaCha stream derived from the master
//! seed, so adding draws to one (more test points, say) never shifts another (the particles).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Target = 1,
    TrainInputs = 2,
    TestInputs = 3,
    LabelNoise = 4,
    Particles = 5,
    /// SGD's batches (indices or fresh samples).
    Batches = 6,
    /// Langevin noise.
    Langevin = 7,
    /// The radial PDE's initial radii.
    Radii = 8,
    /// Points drawn from a grid density (W2 of particles against a 2-D PDE).
    DensitySample = 9,
}

pub fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}
