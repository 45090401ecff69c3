// Controllers: the session table is a module-level object in this process.
const sessions = {};

exports.create = (req, res) => {
  sessions[req.params.id] = { cart: [], createdAt: Date.now() };
  res.status(201).json({ id: req.params.id });
};

exports.show = (req, res) => {
  const session = sessions[req.params.id];
  if (!session) return res.status(404).json({ error: "Session not found" });
  res.json(session);
};
